package main

import (
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestAccountingFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(o accountingOptions) bool
	}{
		{nil, "", func(o accountingOptions) bool {
			return o.retention == 0 && o.fairShare.HalfLife == 7*24*time.Hour && o.weights.FairShare == 1000 && o.weights.AgeMax == 7*24*time.Hour &&
				o.fairShare.GPUWeight == 0
		}},
		{[]string{"--archive-retention", "90d", "--fairshare-half-life", "36h", "--shares", "phys=3, bio=1", "--weight-fairshare", "5000"}, "", func(o accountingOptions) bool {
			return o.retention == 90*24*time.Hour && o.fairShare.HalfLife == 36*time.Hour &&
				o.fairShare.Shares["phys"] == 3 && o.fairShare.Shares["bio"] == 1 && o.weights.FairShare == 5000
		}},
		{[]string{"--archive-retention", "forever"}, `--archive-retention "forever"`, nil},
		{[]string{"--fairshare-half-life", "0"}, "--fairshare-half-life must be more than 0", nil},
		{[]string{"--shares", "phys"}, `--shares "phys"`, nil},
		{[]string{"--shares", "phys=-1"}, `--shares "phys=-1"`, nil},
		{[]string{"--weight-age", "-1"}, "--weight-age must be 0 or more", nil},
		{[]string{"--fairshare-gpu-weight", "-2"}, "--fairshare-gpu-weight must be 0 or more", nil},
		{[]string{"--fairshare-gpu-weight", "8"}, "", func(o accountingOptions) bool { return o.fairShare.GPUWeight == 8 }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got accountingOptions
			app := &cli.App{Flags: accountingFlags(), Action: func(c *cli.Context) error {
				var err error
				got, err = readAccountingFlags(c)
				return err
			}, ExitErrHandler: func(*cli.Context, error) {}}
			err := app.Run(append([]string{"hpcd"}, tt.args...))
			switch {
			case tt.wantErr != "":
				ec, ok := err.(cli.ExitCoder)
				if !ok || ec.ExitCode() != 2 || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want exit 2 saying %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case !tt.check(got):
				t.Errorf("options %+v", got)
			}
		})
	}
}
