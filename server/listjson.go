package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"iter"
	"net/http"

	"github.com/hpc-sched/hpc/api"
)

// writeJobsJSON writes jobs as writeJSON would (the same bytes: a JSON
// array and a newline) but one element at a time through a small buffer.
// writeJSON encodes the whole value into one buffer first: for a list of
// 100,000 jobs (~50 MB of JSON) that buffer, grown by doubling, more than
// doubled the server's heap at its peak.
func writeJobsJSON(w http.ResponseWriter, jobs iter.Seq[*api.Job]) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteByte('[')
	// One encoder and buffer for all elements (json.Marshal returned a
	// fresh copy of each); Encode ends each with a newline, left out.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	first := true
	for j := range jobs {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		buf.Reset()
		if err := enc.Encode(j); err != nil {
			// Not reachable for api.Job (no channels, funcs or NaN
			// floats); stop rather than send a broken array silently.
			return
		}
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
	}
	bw.WriteString("]\n")
	bw.Flush()
}

// listChunk is how many jobs a full list converts under one hold of s.mu.
const listChunk = 256

// listedJobs converts the jobs ids (sorted) to what the list shows, a
// chunk at a time under s.mu and streamed between: converting 100,000
// jobs into one slice first took ~70 MB of the server's heap for the
// length of the request, and held s.mu (so every submit and scheduling
// pass waited) for all of it. A job that ended and left the live set, or
// no longer matches the filters, between the id walk and its chunk is
// left out, as a later list would.
func (s *Server) listedJobs(ids []uint64, match func(*job) bool, show func(*job) api.Job) iter.Seq[*api.Job] {
	return func(yield func(*api.Job) bool) {
		buf := make([]api.Job, 0, min(len(ids), listChunk))
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), listChunk)]
			ids = ids[len(chunk):]
			buf = buf[:0]
			s.mu.Lock()
			for _, id := range chunk {
				if j := s.jobs[id]; j != nil && match(j) {
					buf = append(buf, show(j))
				}
			}
			s.mu.Unlock()
			for i := range buf {
				if !yield(&buf[i]) { // valid until the next chunk
					return
				}
			}
		}
	}
}

// writeBriefJSON answers ?view=brief with the bytes that writeJSON of an
// api.JobList would send, but builds the tab-separated lines a chunk of
// jobs at a time under s.mu and writes each chunk out escaped: the whole
// list at 100,000 jobs was ~17 MB of JobBrief values, then the TSV, its
// string copy and JSON encoding of each (~10 MB apiece, grown by
// doubling) all at once, which is what set the server's heap peak when
// `hpcsub queue` ran. Escaping a JSON string is rune by rune, so escaping
// whole lines chunk by chunk gives the same bytes as escaping it all.
func (s *Server) writeBriefJSON(w http.ResponseWriter, ids []uint64, match func(*job) bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"tsv":"`)
	writeEscaped(bw, []byte(api.BriefColumns+"\n"))
	var lines []byte
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), listChunk)]
		ids = ids[len(chunk):]
		lines = lines[:0]
		s.mu.Lock()
		for _, id := range chunk {
			if j := s.jobs[id]; j != nil && match(j) {
				lines = j.apiBrief().AppendTSV(lines)
			}
		}
		s.mu.Unlock()
		writeEscaped(bw, lines)
	}
	bw.WriteString("\"}\n")
	bw.Flush()
}

// writeEscaped writes text as the inside of a JSON string, escaped as
// encoding/json escapes it (HTML characters and U+2028/9 included).
func writeEscaped(bw *bufio.Writer, text []byte) {
	q, _ := json.Marshal(string(text)) // a string always encodes
	bw.Write(q[1 : len(q)-1])
}
