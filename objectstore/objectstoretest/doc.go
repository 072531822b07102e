// Package objectstoretest is the conformance suite every objectstore
// backend passes: Run exercises each Store operation and its edges against
// a fresh store. It imports testing, so only tests use it.
package objectstoretest
