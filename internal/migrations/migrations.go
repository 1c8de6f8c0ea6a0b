// Package migrations loads the numbered schema steps that the SQL stores
// embed, so that the SQLite and PostgreSQL stores read them the same way.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one schema step.
type Migration struct {
	// Version numbers the steps from 1 without gaps.
	Version int
	// Name is the file name, such as 0001_init.sql.
	Name string
	// SQL is the file's content.
	SQL string
}

// Load returns the *.sql files in dir of fsys in version order. Each
// name starts with its version and an underscore (0001_init.sql); a
// missing or repeated number is an error, because a gap would leave a
// database half-migrated without anyone noticing.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for i, name := range names { // fs.Glob sorts
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want version %04d", base, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	return ms, nil
}
