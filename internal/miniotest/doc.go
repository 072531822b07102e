// Package miniotest runs a real MinIO server for tests: Start launches one
// on 127.0.0.1 with a private data directory and random root credentials,
// NewBucket makes a fresh bucket per caller, Stop and Start take the
// server down and bring it back (same data, same port) for outage tests,
// and test cleanup kills it, printing its log if the test failed.
//
// The binary is built by scripts/install-minio.sh (go install of the
// pinned Version into a cache directory); STRATA_MINIO_BINARY points at
// another. A missing binary fails the test with the command that
// installs it: the object-store tests never skip for want of MinIO.
package miniotest
