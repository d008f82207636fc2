// Command trivydb-writer writes a bbolt file in the layout Trivy reads as its vulnerability DB.
//
// Trivy's real DB comes from a public registry that the test machines cannot reach, so the tests
// build a small one of made-up advisories. Usage: trivydb-writer DBFILE < entries.json, where
// entries.json is a list of {"bucket": ["outer", "inner", ...], "key": "K", "value": <any JSON>}.
// An entry with an empty key only makes sure its buckets exist (Trivy panics on a missing bucket).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

type entry struct {
	Bucket []string        `json:"bucket"`
	Key    string          `json:"key"`
	Value  json.RawMessage `json:"value"`
}

func put(tx *bolt.Tx, e entry) error {
	if len(e.Bucket) == 0 {
		return fmt.Errorf("entry %q has no bucket", e.Key)
	}
	b, err := tx.CreateBucketIfNotExists([]byte(e.Bucket[0]))
	if err != nil {
		return err
	}
	for _, name := range e.Bucket[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	if e.Key == "" {
		return nil
	}
	return b.Put([]byte(e.Key), e.Value)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: trivydb-writer DBFILE < entries.json")
		os.Exit(2)
	}
	var entries []entry
	if err := json.NewDecoder(os.Stdin).Decode(&entries); err != nil {
		fmt.Fprintln(os.Stderr, "reading entries:", err)
		os.Exit(1)
	}
	db, err := bolt.Open(os.Args[1], 0o644, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opening db:", err)
		os.Exit(1)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, e := range entries {
			if err := put(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writing db:", err)
		os.Exit(1)
	}
}
