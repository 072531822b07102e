// Package memnet is an in-process network: a net.Listener whose
// connections are net.Pipe pairs made by its Dial. A single-node Strata
// uses it to reach its own controller over the same protocol code path a
// cluster uses over TCP, without opening a port.
package memnet
