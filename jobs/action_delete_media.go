package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// DeleteMedia deletes the user's uploads; with before or min_size only
// the matching files.
const DeleteMedia Action = "delete-media"

var deleteMediaAction = &Spec{Name: DeleteMedia, Kind: MediaRow, Columns: []string{"before", "min_size"},
	Destructive: true, parse: parseMediaFilter, plan: planDeleteMedia}

// mediaFilter is a delete-media row's payload.
type mediaFilter struct {
	before  int64  // unix ms; 0 for none
	minSize *int64 // only files of at least this many bytes (nil: any)
}

func parseMediaFilter(p *parser, _ *Job) any {
	return &mediaFilter{before: p.before(), minSize: p.count("min_size")}
}

func planDeleteMedia(ctx context.Context, j *Job, env Env, _ *State, p *Plan) error {
	f, c, id := j.payload.(*mediaFilter), env.Client, p.UserID
	all, err := userMedia(ctx, c, id)
	if err != nil {
		return err
	}
	var sel []synapse.Media
	var size int64
	for _, m := range all {
		if (f.before == 0 || m.CreatedTS < f.before) && (f.minSize == nil || m.MediaLength >= *f.minSize) {
			sel = append(sel, m)
			size += m.MediaLength
		}
	}
	filter := f.String()
	if len(sel) == 0 {
		p.Reason = "no media to delete" + filter
		return nil
	}
	p.MediaFiles = len(sel)
	change := FieldChange{Field: "media", Old: fmt.Sprintf("%d %s, %s%s", len(sel), files(len(sel)), bytesText(size), filter), New: "deleted"}
	if filter == "" {
		p.add("media", change, func(ctx context.Context) (int, error) {
			return 200, deleteAllMedia(ctx, c, id)
		})
		return nil
	}
	// The user media DELETE of Synapse 1.160 takes no filter: with one,
	// the chosen files go one by one.
	_, server, _ := strings.Cut(id, ":")
	p.add("media", change, func(ctx context.Context) (int, error) {
		for _, m := range sel {
			if err := c.DeleteMedia(ctx, server, m.MediaID); err != nil && !synapse.IsNotFound(err) {
				return 0, fmt.Errorf("delete %s: %w", m.MediaID, err)
			}
		}
		return 200, nil
	})
	return nil
}

// String says which files the filter picks, for plans; "" for all.
func (f *mediaFilter) String() string {
	var parts []string
	if f.before != 0 {
		parts = append(parts, "uploaded before "+time.UnixMilli(f.before).UTC().Format(time.RFC3339))
	}
	if f.minSize != nil {
		parts = append(parts, "of at least "+bytesText(*f.minSize))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " and ")
}
