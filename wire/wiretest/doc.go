// Package wiretest is the client side of the Kafka protocol for tests of
// the servers built on package wire (the broker's, the controller's):
// writing request frames and reading response frames on a raw connection,
// so that a test sees exactly the bytes a server sends.
//
// It imports nothing of Strata's, so package wire's own tests can use it.
package wiretest
