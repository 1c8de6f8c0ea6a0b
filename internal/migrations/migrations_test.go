package migrations

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   []string
		want    []string
		wantErr bool
	}{
		{"ordered", []string{"m/0002_b.sql", "m/0001_a.sql", "m/README"}, []string{"0001_a.sql", "0002_b.sql"}, false},
		{"empty", nil, nil, false},
		{"gap", []string{"m/0001_a.sql", "m/0003_c.sql"}, nil, true},
		{"repeated", []string{"m/0001_a.sql", "m/0001_b.sql"}, nil, true},
		{"no number", []string{"m/init.sql"}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys[f] = &fstest.MapFile{Data: []byte("-- " + f)}
			}
			ms, err := Load(fsys, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load: err %v, want error %v", err, tt.wantErr)
			}
			if len(ms) != len(tt.want) {
				t.Fatalf("got %d migrations, want %d", len(ms), len(tt.want))
			}
			for i, m := range ms {
				if m.Name != tt.want[i] || m.Version != i+1 || m.SQL != "-- m/"+tt.want[i] {
					t.Errorf("migration %d = %+v, want %s version %d", i, m, tt.want[i], i+1)
				}
			}
		})
	}
}
