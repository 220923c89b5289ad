package journal

// LastRunOutcomes counts the row results the journal at path holds for its
// last run (the records after its last run header), the latest result of a
// row winning. A run whose journal failed uses it to report only what a
// resume will find: Scan's rules are Load's, so a torn last line counts
// for nothing here as it will not for the resume.
func LastRunOutcomes(path string) (map[string]int, error) {
	latest := map[string]Outcome{}
	_, err := ScanFile(path, func(b []byte) error {
		r, err := decodeEntry(b)
		if err != nil {
			return err
		}
		switch r.Type {
		case "run":
			clear(latest)
		case "row":
			latest[r.Key] = r.Outcome
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, o := range latest {
		out[string(o)]++
	}
	return out, nil
}
