// Package shape checks the structure of a Kafka request body before kmsg
// decodes it, and says what decoding it will cost.
//
// Every byte from the network is hostile until checked, and a decoder must
// cost at most a small multiple of the bytes it is given. kmsg decodes a
// request by allocating each array at the length the request claims and
// looping over counts read from the input, so a short body that claims
// huge counts (2^32-1 tagged fields, 10^8 topics) used to cost seconds of
// CPU or gigabytes of memory before failing. Check walks the body along the
// request's schema first, without allocating: every array, string, bytes
// field and tagged-field section is bounded by the bytes actually present,
// every element is walked, and the walk costs O(len(body)). What it
// returns, Cost, is the memory kmsg's decode of the same body will
// allocate, computed from kmsg's own struct sizes, so the server (package
// wire) can charge it to its request-memory budget before decoding.
//
// Contents:
//   - schema.go: the wire layout of every request a Strata listener
//     serves, at every version kmsg knows, named after kmsg's struct
//     fields (which gives the element sizes and readable error messages);
//   - shape.go: the walker (Check) and Cost.
//
// The schema is data about the public Kafka protocol; shape_test.go keeps
// it honest by encoding randomly filled kmsg requests at every version and
// requiring Check to walk exactly their bytes, and FuzzCheck requires that
// Check accepts whatever kmsg can decode and that kmsg's allocations stay
// within Cost.
//
// Check is lenient where leniency costs nothing: any negative length is read
// as null, as kmsg reads it, and nullability is left to kmsg. It only
// refuses bodies that kmsg would refuse anyway (too short for what they
// claim) and bodies that claim more tagged fields than bytes.
//
// The package has no state; Check may run concurrently.
package shape
