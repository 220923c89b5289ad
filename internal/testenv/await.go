package testenv

import "time"

// Await polls cond until it holds or within has passed, and reports
// whether it held. It is for a state that nothing announces: a journal a
// child synbatch process writes, or a fake server's counter read from
// another goroutine. The poll interval is not a clock the test depends on,
// only how soon the state is seen; a loaded machine makes the wait longer,
// never the test wrong. Where a channel or synctest can say when the state
// is reached, use that instead.
func Await(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return cond()
		}
	}
	return true
}
