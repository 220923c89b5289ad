package synapse

import (
	"context"
	"net/url"
)

// TaskAction is the task scheduler's name for a kind of server task.
type TaskAction string

// The server tasks synbatch starts.
const (
	TaskRedact       TaskAction = "redact_all_events"       // a user redaction
	TaskPurgeHistory TaskAction = "purge_history"           // a room's history purge
	TaskDeleteRoom   TaskAction = "shutdown_and_purge_room" // the v2 delete API's shutdown, then purge
)

// RunningTask returns the id of a task of action on resource (a user or a
// room) that is scheduled or running, from the server's task list, or ""
// when there is none. It is how a request whose answer was lost is settled:
// the task it started is read back here and polled, never started again.
// The task list is the one place that shows a task still waiting for a
// free slot in Synapse's task scheduler (five run at once): a room's delete
// status leaves such a deletion out, and so does Synapse's own "already in
// progress" guard. A Synapse without the task list (404, or an
// unrecognized endpoint) has none to show: "" and no error, and the
// caller's other reads decide.
func (c *Client) RunningTask(ctx context.Context, action TaskAction, resource string) (string, error) {
	q := url.Values{"action_name": {string(action)}, "resource_id": {resource}, "status": {TaskScheduled, TaskActive}}
	var out struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"scheduled_tasks"`
	}
	err := c.get(ctx, c.admin("/v1/scheduled_tasks?%s", q.Encode()), &out)
	switch {
	case IsNotFound(err) || IsUnrecognized(err):
		return "", nil
	case err != nil:
		return "", err
	case len(out.Tasks) == 0:
		return "", nil
	}
	return out.Tasks[0].ID, nil
}
