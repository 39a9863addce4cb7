package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

func TestBatchAtomicAndScan(t *testing.T) {
	db := storetest.Open(t)
	b := db.NewBatch()
	for i := range 5 {
		b.Set(store.Key(store.PrefixNumber, fmt.Sprintf("+1555000%d", i)), []byte{byte(i)})
	}
	b.Set(store.Key(store.PrefixRoute, "+1"), []byte("r"))
	if _, err := db.Get(store.Key(store.PrefixNumber, "+15550000")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("uncommitted batch visible: %v", err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := db.Scan([]byte(store.PrefixNumber), store.Key(store.PrefixNumber, "+15550002"), func(k, v []byte) (bool, error) {
		got = append(got, string(k))
		return len(got) < 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"num/+15550002", "num/+15550003"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scan = %v, want %v", got, want)
	}
}

func TestGetJSONAndDelete(t *testing.T) {
	db := storetest.Open(t)
	type rec struct {
		V int    `json:"v"`
		N string `json:"n"`
	}
	k := store.Key(store.PrefixSession, "abc")
	b := db.NewBatch()
	b.SetJSON(k, rec{V: 1, N: "x"})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var r rec
	if err := db.GetJSON(k, &r); err != nil || r.N != "x" {
		t.Fatalf("GetJSON = %+v, %v", r, err)
	}
	b = db.NewBatch()
	b.Delete(k)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.Has(k); ok || err != nil {
		t.Fatalf("Has after delete = %v, %v", ok, err)
	}
}

func TestSplitKey(t *testing.T) {
	k := store.Key(store.PrefixSessionUnique, "a/b/c")
	parts, ok := store.SplitKey(k, store.PrefixSessionUnique, 1)
	if !ok || parts[0] != "a/b/c" {
		t.Fatalf("SplitKey = %q %v", parts, ok)
	}
	parts, ok = store.SplitKey(store.Key(store.PrefixSessionIndex, "+1", "+2"), store.PrefixSessionIndex, 2)
	if !ok || parts[0] != "+1" || parts[1] != "+2" {
		t.Fatalf("SplitKey = %q %v", parts, ok)
	}
	if _, ok := store.SplitKey([]byte("num/x"), store.PrefixSession, 1); ok {
		t.Fatal("SplitKey accepted the wrong prefix")
	}
}

func TestReopenKeepsDataAndChecksSchema(t *testing.T) {
	fs := vfs.NewMem()
	db, err := store.Open("d", store.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	b.Set([]byte("num/+1"), []byte("v"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b = db.NewBatch()
	b.Set(store.KeySchema, []byte("99"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := store.Open("d", store.Options{FS: fs}); !errors.Is(err, store.ErrSchema) {
		t.Fatalf("Open with schema 99 = %v, want ErrSchema", err)
	}
}

func TestClosed(t *testing.T) {
	db := storetest.Open(t)
	db.Close()
	if _, err := db.Get([]byte("x")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	b := db.NewBatch()
	b.Set([]byte("x"), nil)
	if err := b.Commit(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Commit after Close = %v", err)
	}
}
