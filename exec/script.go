package exec

import "strings"

// scriptArgv is how a job script at path runs: with the interpreter of its
// "#!" line and that line's one optional argument, as the kernel would run
// it (the script file itself is not executable), else with /bin/sh.
func scriptArgv(script, path string) []string {
	if !strings.HasPrefix(script, "#!") {
		return []string{"/bin/sh", path}
	}
	line, _, _ := strings.Cut(script[2:], "\n")
	line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	interp, arg, _ := strings.Cut(line, " ")
	if interp == "" {
		return []string{"/bin/sh", path}
	}
	argv := []string{interp}
	// Linux passes everything after the interpreter as one argument.
	if arg = strings.TrimSpace(arg); arg != "" {
		argv = append(argv, arg)
	}
	return append(argv, path)
}
