package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// LastRunOutcomes counts the row results the journal at path holds for its
// last run (the records after its last run header), the latest result of a
// row winning. A run whose journal failed uses it to report only what a
// resume will find.
func LastRunOutcomes(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	latest := map[string]Outcome{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[len(line)-1] != '}' {
			continue // a torn tail holds nothing
		}
		var r struct {
			Type    string  `json:"type"`
			Key     string  `json:"key"`
			Outcome Outcome `json:"outcome"`
		}
		if json.Unmarshal(line, &r) != nil {
			continue
		}
		switch r.Type {
		case "run":
			clear(latest)
		case "row":
			latest[r.Key] = r.Outcome
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	out := map[string]int{}
	for _, o := range latest {
		out[string(o)]++
	}
	return out, nil
}
