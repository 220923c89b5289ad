package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

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

// planDeleteAllMedia plans deleting every upload of the plan's user (a
// deactivate row with media=delete); none planned when there is none.
func planDeleteAllMedia(ctx context.Context, env Env, p *Plan) error {
	c, id := env.Client, p.UserID
	all, err := userMedia(ctx, c, id)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return nil
	}
	var size int64
	for _, m := range all {
		size += m.MediaLength
	}
	p.MediaFiles = len(all)
	p.add("media", FieldChange{Field: "media", Old: fmt.Sprintf("%d %s, %s", len(all), files(len(all)), bytesText(size)), New: "deleted"},
		func(ctx context.Context) (int, error) { return 200, deleteAllMedia(ctx, c, id) })
	return nil
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
