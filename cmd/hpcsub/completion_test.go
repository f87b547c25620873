package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompletion sources the generated script in a real bash and asks it
// to complete, as the shell does on TAB.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to test its completion: %v", err)
	}
	r := hpcsub("completion", "bash")
	if r.code != 0 {
		t.Fatalf("completion bash: exit %d, %s", r.code, r.stderr)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "c.bash")
	os.WriteFile(script, []byte(r.stdout), 0o644)
	os.WriteFile(filepath.Join(dir, "train.hcl"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	for _, tc := range []struct {
		words string
		want  []string
		not   []string
	}{
		{"hpcsub can", []string{"cancel"}, []string{"submit"}},
		{"hpcsub cancel --s", []string{"--signal", "--state"}, []string{"--wait"}},
		{"hpcsub submit --af", []string{"--after", "--afterok", "--afternotok", "--afterany"}, nil},
		{"hpcsub submit ", []string{"train.hcl"}, []string{"notes.txt"}},
		{"hpcsub --addr x que", []string{"queue"}, nil},
		{"hpcsub node ", []string{"drain", "resume"}, nil},
		{"hpcsub completion ", []string{"bash", "zsh"}, nil},
	} {
		t.Run(tc.words, func(t *testing.T) {
			words := strings.Fields(tc.words)
			if strings.HasSuffix(tc.words, " ") {
				words = append(words, "")
			}
			quoted := make([]string, len(words))
			for i, w := range words {
				quoted[i] = "'" + w + "'"
			}
			cmd := exec.Command(bash, "-c", "source "+script+"; COMP_WORDS=("+strings.Join(quoted, " ")+"); COMP_CWORD="+
				strconv.Itoa(len(words)-1)+"; _hpcsub; printf '%s\\n' \"${COMPREPLY[@]}\"")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v: %s", err, out)
			}
			got := strings.Fields(string(out))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("completions %q lack %q", got, w)
				}
			}
			for _, w := range tc.not {
				if slices.Contains(got, w) {
					t.Errorf("completions %q hold %q", got, w)
				}
			}
		})
	}
	if r := hpcsub("completion", "zsh"); r.code != 0 || !strings.Contains(r.stdout, "bashcompinit") {
		t.Errorf("completion zsh: exit %d, %q", r.code, r.stdout)
	}
	if r := hpcsub("completion", "fish"); r.code != 2 {
		t.Errorf("completion fish: exit %d, want 2", r.code)
	}
}
