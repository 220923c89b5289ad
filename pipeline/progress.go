package pipeline

// Progress hears how an apply run goes. The pipeline only reports; the
// command line draws it (a bar on a terminal, plain lines otherwise).
type Progress interface {
	// Start says how many rows the run has; inFlight tells the rows being
	// worked on now (never more than the adaptive level allows).
	Start(total int, inFlight func() int)
	// Add counts n more rows finished, by this run or an earlier one.
	Add(n int)
	// Finish ends the report.
	Finish()
}

// noProgress hears nothing.
type noProgress struct{}

func (noProgress) Start(int, func() int) {}
func (noProgress) Add(int)               {}
func (noProgress) Finish()               {}

// progress is the run's Progress, or one that hears nothing.
func progress(cfg Config) Progress {
	if cfg.Progress == nil {
		return noProgress{}
	}
	return cfg.Progress
}
