package fsutil

import (
	"errors"
	"syscall"
)

// Hint returns an operator-facing explanation of a file-system error that
// has a resource or permission cause, or "" for any other error. Log
// records of failed opens, rolls and creates carry it, so that "too many
// open files" says which limit was reached and what frees it.
func Hint(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.EMFILE):
		return "the process has reached its open-file limit (RLIMIT_NOFILE): close client connections or delete partitions, or raise the limit (ulimit -n, systemd LimitNOFILE)"
	case errors.Is(err, syscall.ENFILE):
		return "the system-wide open-file table is full (fs.file-max): other processes hold too many files"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the file system is full (or the quota is reached): free disk space or lower retention"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return "the data directory cannot be written: check its permissions and that it is mounted read-write"
	}
	return ""
}

// IsHandleExhaustion reports whether err says that no file handle could be
// allocated: the process limit (EMFILE) or the system's (ENFILE).
func IsHandleExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
