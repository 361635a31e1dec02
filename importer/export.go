package importer

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Open opens an export at p for Read: a snapshot ZIP; a directory holding
// the ZIP unpacked, or table files; or the directory `npx convex export
// --path <dir>` wrote into, whose newest snapshot_*.zip it opens. It says
// what it opened in from.
func Open(p string) (fsys fs.FS, from string, closeFn func() error, err error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, "", nil, err
	}
	if !info.IsDir() {
		return openZip(p)
	}
	dir := os.DirFS(p)
	if hasTables(dir) {
		return dir, p, func() error { return nil }, nil
	}
	zips, _ := fs.Glob(dir, "snapshot_*.zip")
	if len(zips) == 0 {
		return dir, p, func() error { return nil }, nil // Read says what is missing
	}
	// snapshot_<timestamp>.zip: the newest sorts last among equal lengths.
	slices.SortFunc(zips, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return openZip(filepath.Join(p, zips[len(zips)-1]))
}

func openZip(p string) (fs.FS, string, func() error, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s is not a ZIP (%v): give a snapshot ZIP of `npx convex export`, or a directory", p, err)
	}
	return zr, p, zr.Close, nil
}

// hasTables reports whether fsys holds a table file at its root.
func hasTables(fsys fs.FS) bool {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.IsDir() && tableFile(fsys, ".", e.Name()) != "" || !e.IsDir() && tableName(e.Name()) != "" {
			return true
		}
	}
	return false
}

// tableName is the table a file at the root of a table directory holds
// ("user" for user.json), or "".
func tableName(file string) string {
	for _, ext := range []string{".jsonl", ".json"} {
		if name, ok := strings.CutSuffix(file, ext); ok {
			return name
		}
	}
	return ""
}

// tablesRead are the tables some source reads, besides the users table.
var tablesRead = []string{
	"authAccounts", "accounts", "user", "account",
	"passwords", "verifiedEmails", "passkeys", "totpSecrets", "usernames",
}

// wanted reports whether Read may use the file at p of an export.
func wanted(p, usersTable string) bool {
	dir, file := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	var table string
	if file == "documents.jsonl" {
		dir, table = path.Split(dir)
		dir = strings.TrimSuffix(dir, "/")
	} else if table = tableName(file); table == "" {
		return false
	}
	if table != usersTable && !slices.Contains(tablesRead, table) {
		return false
	}
	if dir == "" {
		return true
	}
	parent, mount := path.Split(dir)
	return parent == componentsDir+"/" && mount != ""
}

// Pack writes a ZIP of the files of fsys that Read may use, under the same
// names: what `caddy convex-auth users import` sends to the admin API,
// without the export's other tables and stored files.
func Pack(fsys fs.FS, usersTable string, w io.Writer) error {
	if usersTable == "" {
		usersTable = "users"
	}
	zw := zip.NewWriter(w)
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "_storage" || strings.HasSuffix(p, "/_storage") {
				return fs.SkipDir
			}
			return nil
		}
		if !wanted(p, usersTable) {
			return nil
		}
		n++
		return copyInto(zw, fsys, p)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("the export holds none of the tables an import reads (users, authAccounts, accounts, user, account, …): give the export itself")
	}
	return zw.Close()
}

func copyInto(zw *zip.Writer, fsys fs.FS, p string) error {
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
