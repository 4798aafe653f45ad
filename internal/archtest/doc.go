// Package archtest holds only tests: the import rules of docs/architecture.md, checked on the
// packages as they are (go list), so a change that breaks one fails make test instead of
// waiting for a reader to notice. It has no code and imports nothing of Driftline's.
package archtest
