package server

import (
	"fmt"
	"io/fs"
)

// sentFile reads a job's script_file from what the client sent with the
// submit: the server runs as root and must never read a path a user names.
func sentFile(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("the client did not send %s: %w", name, fs.ErrNotExist)
		}
		return []byte(data), nil
	}
}
