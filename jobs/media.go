package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// planMedia plans quarantine-media and delete-media: it lists the user's
// uploads and plans a write only when some are left to quarantine or delete.
func (j *Job) planMedia(ctx context.Context, env Env, st *State, p *Plan) error {
	c, id := env.Client, p.UserID
	all, err := userMedia(ctx, c, id)
	if err != nil {
		return err
	}
	switch j.Action {
	case QuarantineMedia:
		// Synapse quarantines all of a user's files but the protected ones.
		var open, protected int
		var size int64
		for _, m := range all {
			switch {
			case m.QuarantinedBy != nil:
			case safeFromQuarantine(m):
				protected++
			default:
				open++
				size += m.MediaLength
			}
		}
		if open == 0 {
			p.Reason = fmt.Sprintf("%d %s, none left to quarantine", len(all), files(len(all)))
			if protected > 0 {
				p.Reason += fmt.Sprintf(" (%d protected)", protected)
			}
			return nil
		}
		p.add("media", FieldChange{Field: "media", Old: fmt.Sprintf("%d of %d %s not quarantined (%s)", open, len(all), files(len(all)), bytesText(size)), New: "quarantined"},
			func(ctx context.Context) (int, error) {
				_, err := c.QuarantineUserMedia(ctx, id)
				return 200, err
			})

	case DeleteMedia:
		var sel []synapse.Media
		var size int64
		for _, m := range all {
			if (j.Before == 0 || m.CreatedTS < j.Before) && (j.MinSize == nil || m.MediaLength >= *j.MinSize) {
				sel = append(sel, m)
				size += m.MediaLength
			}
		}
		filter := j.mediaFilter()
		if len(sel) == 0 {
			p.Reason = "no media to delete" + filter
			return nil
		}
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
	}
	return nil
}

// deleteAllMedia repeats the user media DELETE, which removes at most a page
// (100 files) per call and says nothing of what is left, until a call
// deletes nothing; then checks that nothing is left.
func deleteAllMedia(ctx context.Context, c *synapse.Client, id string) error {
	for {
		n, err := c.DeleteUserMediaPage(ctx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	left, err := userMedia(ctx, c, id)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return rowErr("%d of %s's files were not deleted (the server could not remove them: see its log)", len(left), id)
	}
	return nil
}

func (j *Job) mediaFilter() string {
	var parts []string
	if j.Before != 0 {
		parts = append(parts, "uploaded before "+time.UnixMilli(j.Before).UTC().Format(time.RFC3339))
	}
	if j.MinSize != nil {
		parts = append(parts, "of at least "+bytesText(*j.MinSize))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " and ")
}

// userMedia lists every file a user uploaded; a missing user fails the row.
func userMedia(ctx context.Context, c *synapse.Client, id string) ([]synapse.Media, error) {
	var all []synapse.Media
	from := ""
	for {
		page, err := c.UserMedia(ctx, id, from, 500)
		if synapse.IsNotFound(err) {
			return nil, rowErr("%s does not exist", id)
		}
		if err != nil {
			return nil, fmt.Errorf("list media of %s: %w", id, err)
		}
		all = append(all, page.Media...)
		if page.NextToken == "" || len(page.Media) == 0 {
			return all, nil
		}
		from = page.NextToken
	}
}

// safeFromQuarantine reads a file's protection, which the typed Media
// leaves in its raw entry.
func safeFromQuarantine(m synapse.Media) bool {
	var x struct {
		Safe synapse.Flag `json:"safe_from_quarantine"`
	}
	_ = json.Unmarshal(m.Raw, &x)
	return bool(x.Safe)
}

func files(n int) string {
	if n == 1 {
		return "file"
	}
	return "files"
}

// bytesText is a size for people: 512 B, 3.4 KB, 12.0 MB.
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
