package journal

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Summary is what a journal says, with the latest record of each row winning.
type Summary struct {
	Path     string         `json:"path"`
	Runs     int            `json:"runs"`
	Manifest string         `json:"manifest,omitempty"`
	Server   string         `json:"server,omitempty"`
	Rows     int            `json:"rows"`
	Outcomes map[string]int `json:"outcomes"`
	// Created and Updated split the done rows: the server answered 201 to
	// a created row's write.
	Created int      `json:"created"`
	Updated int      `json:"updated"`
	Failed  []Record `json:"failed"`  // failed and uncertain rows, by row number
	Pending int      `json:"pending"` // rows with a write begun but no result
	LastRun *End     `json:"last_run,omitempty"`
}

// Summarize reads the journal at path.
func Summarize(path string) (*Summary, error) {
	return SummarizeAll(path)
}

// SummarizeAll reads several journals as one, such as the journals of the
// shards of one manifest: the latest record of each row wins.
func SummarizeAll(paths ...string) (*Summary, error) {
	s := &Summary{Path: strings.Join(paths, ", "), Outcomes: map[string]int{}, Failed: []Record{}}
	latest := map[string]Record{}
	begun := map[string]bool{}
	for _, p := range paths {
		if err := s.read(p, latest, begun); err != nil {
			return nil, err
		}
	}
	for k, r := range latest {
		s.Rows++
		s.Outcomes[string(r.Outcome)]++
		if r.Outcome == Done {
			if r.Status == http.StatusCreated {
				s.Created++
			} else {
				s.Updated++
			}
		}
		if r.Outcome == Failed || r.Outcome == Uncertain {
			s.Failed = append(s.Failed, r)
		}
		if r.Outcome.Final() {
			delete(begun, k)
		}
	}
	for k := range begun {
		if _, ok := latest[k]; !ok {
			s.Pending++
		}
	}
	sort.Slice(s.Failed, func(a, b int) bool { return s.Failed[a].Row < s.Failed[b].Row })
	return s, nil
}

func (s *Summary) read(path string, latest map[string]Record, begun map[string]bool) error {
	_, err := ScanFile(path, func(b []byte) error {
		r, err := decodeEntry(b)
		if err != nil {
			return err
		}
		switch r.Type {
		case "run":
			s.Runs++
			s.Manifest, s.Server = r.Manifest, r.Server
		case "begin":
			begun[r.Key] = true
		case "end":
			var e End
			if err := json.Unmarshal(b, &e); err == nil {
				s.LastRun = &e
			}
		case "row":
			latest[r.Key] = r.Record
		}
		return nil
	})
	return err
}

// entry is any record as the readers that report on a journal decode it.
type entry struct {
	Record
	Tool     string `json:"tool"`
	Manifest string `json:"manifest"`
	Server   string `json:"server"`
}

// decodeEntry decodes one of Scan's lines and refuses what Writer never
// writes, as Load does.
func decodeEntry(line []byte) (entry, error) {
	var r entry
	if err := json.Unmarshal(line, &r); err != nil {
		return entry{}, err
	}
	return r, checkRecord(r.Type, r.Key, r.Row, r.Outcome, r.Task, r.Tool)
}
