package testenv

import "time"

// Await polls cond until it holds or within has passed, and reports
// whether it held. It is for a state that nothing announces: a journal a
// child synbatch process writes, a server's own batch (Synapse's client
// IPs), or a fake server's counter read from another goroutine. The poll
// interval is not a clock the test depends on, only how soon the state is
// seen: it starts at a millisecond and doubles to 100 ms, so a state
// reached at once is seen at once and a costly cond (a journal read, a
// request to Synapse) is not run a hundred times a second on a loaded
// machine. Where a channel or synctest can say when the state is reached,
// use that instead.
func Await(within time.Duration, cond func() bool) bool {
	wait := time.Millisecond
	for deadline := time.Now().Add(within); !cond(); wait = min(2*wait, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(wait)
	}
	return true
}
