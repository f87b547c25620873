package exec

import (
	"reflect"
	"testing"
)

func TestScriptArgv(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   []string
	}{
		{"echo hi\n", []string{"/bin/sh", "/s"}},
		{"#!/bin/bash\nset -o pipefail\n", []string{"/bin/bash", "/s"}},
		{"#!/usr/bin/env python3\nprint(1)\n", []string{"/usr/bin/env", "python3", "/s"}},
		{"#! /bin/bash -eu  \r\n", []string{"/bin/bash", "-eu", "/s"}},
		{"#!/bin/sh -e -x\n", []string{"/bin/sh", "-e -x", "/s"}},
		{"#!\n", []string{"/bin/sh", "/s"}},
	} {
		if got := scriptArgv(tc.script, "/s"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("scriptArgv(%q) = %q, want %q", tc.script, got, tc.want)
		}
	}
}
