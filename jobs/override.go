package jobs

import "fmt"

// Overrides are submit-time settings that replace the file's, as sbatch
// options replace #SBATCH lines. Empty strings and a nil Priority leave
// the file's value.
type Overrides struct {
	Name, Walltime, Output, Error string
	Priority                      *int
}

// Override applies o to s with the same bounds as the file's values. A
// priority may only be lowered (as Slurm's --nice): raising it is for
// admins, through the file or `hpcsub update`.
func (s *Spec) Override(o Overrides) error {
	if o.Name != "" {
		if !jobNameRE.MatchString(o.Name) {
			return fmt.Errorf("--name %q: a job name is 1 to %d letters, digits, '_', '.' and '-'", truncate(o.Name), maxJobNameLen)
		}
		s.Name = o.Name
	}
	if o.Walltime != "" {
		d, err := ParseDuration(o.Walltime)
		if err != nil {
			return fmt.Errorf("--time: %w", err)
		}
		if d < minWalltime || d > maxDuration {
			return fmt.Errorf("--time must be from %s to %s; got %s", minWalltime, formatDuration(maxDuration), d)
		}
		s.Walltime = d
	}
	for _, p := range []struct {
		flag, val string
		dst       *string
	}{{"--output", o.Output, &s.Output}, {"--error", o.Error, &s.Error}} {
		if p.val == "" {
			continue
		}
		if len(p.val) > maxPatternLen {
			return fmt.Errorf("%s: a file name pattern is at most %d bytes", p.flag, maxPatternLen)
		}
		*p.dst = p.val
	}
	if o.Priority != nil {
		if *o.Priority < 0 || *o.Priority > s.Priority {
			return fmt.Errorf("--priority %d: you may only lower a job's priority, to 0..%d (the file's)", *o.Priority, s.Priority)
		}
		s.Priority = *o.Priority
	}
	return nil
}
