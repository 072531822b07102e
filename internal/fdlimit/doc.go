// Package fdlimit lowers the process's open-file limit for a test, so that
// the code under test runs out of file handles (EMFILE) at a chosen point.
//
// For tests only (it takes a testing.TB). Linux: it reads /proc/self/fd.
// The limit is per process, so a test that uses it must not run in
// parallel with others.
package fdlimit
