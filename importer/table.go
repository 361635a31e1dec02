package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
)

// Pos is where a row is: its file in the export and its line (1-based).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// row is one document of a table.
type row struct {
	pos    Pos
	fields map[string]json.RawMessage
}

// maxRowBytes bounds one line of a documents.jsonl, and maxTableBytes a
// table's file, so that a hostile ZIP cannot inflate without bound.
const (
	maxRowBytes   = 4 << 20
	maxTableBytes = 1 << 30
)

// table is the rows of one table, or the rows that could not be read.
type table struct {
	file string
	rows []row
	bad  []Problem
}

// tableFile finds the file of a table under dir ("." for the root): a
// Convex export's <table>/documents.jsonl, else <table>.jsonl or
// <table>.json (an array). "" when there is none.
func tableFile(fsys fs.FS, dir, name string) string {
	for _, f := range []string{name + "/documents.jsonl", name + ".jsonl", name + ".json"} {
		p := path.Join(dir, f)
		if info, err := fs.Stat(fsys, p); err == nil && !info.IsDir() {
			return p
		}
	}
	return ""
}

// readTable reads the file tableFile found; a row that is not a JSON
// object becomes a problem of its own.
func readTable(fsys fs.FS, file string) (*table, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &table{file: file}
	lr := &io.LimitedReader{R: f, N: maxTableBytes + 1}
	var rerr error
	if strings.HasSuffix(file, ".json") {
		rerr = t.readArray(lr)
	} else {
		rerr = t.readLines(lr)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%s is over %d GiB: import the users in parts", file, maxTableBytes>>30)
	}
	if rerr != nil {
		return nil, rerr
	}
	return t, nil
}

func (t *table) readLines(r io.Reader) error {
	file := t.file
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxRowBytes)
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		t.add(Pos{file, line}, raw)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: a line is over %d MiB: this is not a documents.jsonl of an export", file, maxRowBytes>>20)
		}
		return fmt.Errorf("reading %s: %w", file, err)
	}
	return nil
}

// readArray reads a JSON array of objects, each at the line it starts on.
func (t *table) readArray(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.file, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fmt.Errorf("%s is not a JSON array of rows", t.file)
	}
	for dec.More() {
		start := int(dec.InputOffset())
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return fmt.Errorf("%s:%d: %v: the file is not valid JSON", t.file, lineAt(raw, start), err)
		}
		// The offset is before the separator and whitespace.
		for start < len(raw) && (raw[start] == ',' || raw[start] == ' ' || raw[start] == '\n' || raw[start] == '\r' || raw[start] == '\t') {
			start++
		}
		t.add(Pos{t.file, lineAt(raw, start)}, elem)
	}
	return nil
}

func lineAt(raw []byte, offset int) int {
	return 1 + bytes.Count(raw[:min(offset, len(raw))], []byte{'\n'})
}

func (t *table) add(pos Pos, raw []byte) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		t.bad = append(t.bad, Problem{Pos: pos, Message: "the row is not a JSON object"})
		return
	}
	t.rows = append(t.rows, row{pos: pos, fields: fields})
}

// fieldError is a field of the wrong type.
type fieldError struct{ field, want string }

func (e *fieldError) Error() string { return fmt.Sprintf("%s is not %s", e.field, e.want) }

// str returns a string field; "" when it is missing or null.
func (r row) str(name string) (string, error) {
	raw, ok := r.fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &fieldError{name, "a string"}
	}
	return s, nil
}

// boolean returns a boolean field; false when missing or null.
func (r row) boolean(name string) (bool, error) {
	raw, ok := r.fields[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, &fieldError{name, "true or false"}
	}
	return b, nil
}

// has reports whether a field is present and not null.
func (r row) has(name string) bool {
	raw, ok := r.fields[name]
	return ok && string(raw) != "null"
}

// time returns a time field: Unix milliseconds (a Convex number; an
// exported int64 is a plain number too) or an RFC 3339 string. Zero when
// missing or null.
func (r row) time(name string) (time.Time, error) {
	raw, ok := r.fields[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		if ms, err := strconv.ParseFloat(s, 64); err == nil {
			return fromMillis(name, ms)
		}
		return time.Time{}, &fieldError{name, "a time (Unix milliseconds or RFC 3339)"}
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return time.Time{}, &fieldError{name, "a time (Unix milliseconds or RFC 3339)"}
	}
	return fromMillis(name, ms)
}

func fromMillis(name string, ms float64) (time.Time, error) {
	if math.IsNaN(ms) || ms < 0 || ms > 1e15 {
		return time.Time{}, &fieldError{name, "a time in range"}
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}
