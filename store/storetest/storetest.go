// Package storetest opens store databases on Pebble's in-memory filesystem
// for unit tests.
package storetest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/veilgw/veil/store"
)

// Open returns an empty in-memory database closed at the end of the test.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open("veil", store.Options{
		FS:     vfs.NewMem(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatalf("opening in-memory store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
