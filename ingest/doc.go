// Package ingest is Driftline's streaming ingestion (docs/ingest.md): an ingest
// worker consumes Kafka topics (franz-go) and writes Parquet files into the dataset layout the
// loop reads, datasets/<dataset>/dt=YYYY-MM-DD/, partitioned by the records' event time, with
// the dataset's contract applied at the door.
//
// Exactly once by construction: a file holds a contiguous range of one topic-partition's
// offsets and one event day; its manifest (ingest/<dataset>/manifests/<topic>/<partition>/
// <first offset>.json: the range, the counts, the data file's key and SHA-256) is written,
// once, before the file, and the offsets are committed after it. A worker taking over a
// partition, or restarted after a crash, looks up the manifest at the offset it resumes from:
// a range already recorded is skipped (its file rebuilt from the same records if the crash
// came between the manifest and the file), so no record is written twice or skipped and no
// file is ever written with other content.
package ingest
