// Package traffic sends prediction requests built from dataset rows to a serving worker, the
// way a client service would: the demo and the end-to-end test use it to give canaries live
// traffic.
//
// It imports dataset (the demo generator) only.
package traffic
