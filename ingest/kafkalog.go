package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaLogger passes the Kafka client's own log (group joins, assignments, commits, fetch
// errors) to slog at the named level: error, warn, info or debug ("" or "off": none).
func KafkaLogger(log *slog.Logger, level string) (kgo.Logger, error) {
	var l kgo.LogLevel
	switch strings.ToLower(level) {
	case "", "off", "none":
		return nil, nil
	case "error":
		l = kgo.LogLevelError
	case "warn":
		l = kgo.LogLevelWarn
	case "info":
		l = kgo.LogLevelInfo
	case "debug":
		l = kgo.LogLevelDebug
	default:
		return nil, fmt.Errorf("kafka log level %q: want off, error, warn, info or debug", level)
	}
	return &kafkaLog{log: log.With("component", "kafka"), level: l}, nil
}

type kafkaLog struct {
	log   *slog.Logger
	level kgo.LogLevel
}

func (k *kafkaLog) Level() kgo.LogLevel { return k.level }

func (k *kafkaLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	sl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	}
	k.log.Log(context.Background(), sl, msg, keyvals...)
}
