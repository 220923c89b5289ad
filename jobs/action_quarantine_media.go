package jobs

import (
	"context"
	"fmt"
)

// QuarantineMedia quarantines the user's uploads (protected files stay as
// they are).
const QuarantineMedia Action = "quarantine-media"

var quarantineMediaAction = &Spec{Name: QuarantineMedia, Kind: MediaRow, Destructive: true, plan: planQuarantineMedia}

// planQuarantineMedia plans a write only when some files are left to quarantine.
func planQuarantineMedia(ctx context.Context, _ *Job, env Env, _ *State, p *Plan) error {
	c, id := env.Client, p.UserID
	all, err := userMedia(ctx, c, id)
	if err != nil {
		return err
	}
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
	return nil
}
