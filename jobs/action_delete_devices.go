package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// DeleteDevices deletes the row's devices (or all) that exist; with
// --inactive-days only those not seen for that long.
const DeleteDevices Action = "delete-devices"

var deleteDevicesAction = &Spec{Name: DeleteDevices, Kind: UserRow, Columns: []string{"devices"},
	Destructive: true, parse: parseDevices, plan: withUser(false, planDeleteDevices)}

// devices is a delete-devices row's payload: device ids, or all.
type devices struct {
	ids []string
	all bool
}

func parseDevices(p *parser, _ *Job) any {
	d := &devices{}
	if f, ok := p.row.Fields["devices"]; ok {
		for _, v := range p.list(f) {
			if strings.EqualFold(v, "all") {
				d.all = true
			} else if !slices.Contains(d.ids, v) {
				d.ids = append(d.ids, v)
			}
		}
		if d.all && len(d.ids) > 0 {
			p.bad("devices", "all and device ids together: give one or the other")
		}
	}
	if !d.all && len(d.ids) == 0 {
		p.bad("devices", "delete-devices needs device ids separated by ; or all")
	}
	return d
}

func planDeleteDevices(ctx context.Context, j *Job, env Env, _ *State, p *Plan, _ *synapse.User) error {
	d, c, id := j.payload.(*devices), env.Client, p.UserID
	devs, err := c.Devices(ctx, id)
	if err != nil {
		return fmt.Errorf("read devices of %s: %w", id, err)
	}
	var del []string
	cutoff := time.Now().Add(-time.Duration(env.InactiveDays) * 24 * time.Hour).UnixMilli()
	for _, dev := range devs {
		if !d.all && !slices.Contains(d.ids, dev.DeviceID) {
			continue
		}
		// A device never seen (no last_seen_ts: it has made no request
		// since it was created, perhaps a login seconds ago) is kept.
		if env.InactiveDays > 0 && (dev.LastSeenTS == 0 || dev.LastSeenTS >= cutoff) {
			continue
		}
		del = append(del, dev.DeviceID)
	}
	var missing []string
	for _, want := range d.ids {
		if !slices.ContainsFunc(devs, func(dev synapse.Device) bool { return dev.DeviceID == want }) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		p.note("devices: %s not found", strings.Join(missing, ";"))
	}
	if len(del) > 0 {
		p.Changes = append(p.Changes, FieldChange{Field: "devices", Old: strings.Join(del, ";"), New: "deleted"})
		p.steps = append(p.steps, step{fields: []string{"devices"}, do: func(ctx context.Context) (int, error) {
			return 200, c.DeleteDevices(ctx, id, del)
		}})
	}
	return nil
}
