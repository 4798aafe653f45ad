// Package tablewatch follows a table dataset's new versions (a Delta version, an Iceberg
// snapshot) the way the ingest worker follows a stream: when a new version's newest day
// moves past days that were open, those days close, each once across every watcher (a
// create-once marker), and the trigger fires for the newest of them (start the model's loop
// on the window ending that day, or signal its monitor).
package tablewatch
