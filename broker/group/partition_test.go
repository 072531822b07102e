package group

import "testing"

// The expected values come from Java: "…".hashCode() and
// (h == Integer.MIN_VALUE ? 0 : Math.abs(h)) % n, run on OpenJDK.
func TestPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		id       string
		hash     int32
		mod50    int32
		mod7     int32
		whatsOdd string
	}{
		{"", 0, 0, 0, "empty"},
		{"a", 97, 47, 6, ""},
		{"hello", 99162322, 22, 0, ""},
		{"my-group", -1906497762, 12, 1, "negative hash"},
		{"polygenelubricants", -2147483648, 0, 0, "hash is MinInt32: Kafka's abs maps it to 0"},
		{"é", 233, 33, 2, "one UTF-16 unit, two UTF-8 bytes"},
		{"grüppe-été", 2066613157, 7, 0, "non-ASCII"},
		{"😀", 1772899, 49, 2, "outside the BMP: a surrogate pair"},
		{"console-consumer-12345", 158455506, 6, 6, ""},
	} {
		if h := javaStringHash(tc.id); h != tc.hash {
			t.Errorf("%q (%s): hash %d, want %d", tc.id, tc.whatsOdd, h, tc.hash)
		}
		if p := PartitionFor(tc.id, 50); p != tc.mod50 {
			t.Errorf("%q (%s): partition of 50 %d, want %d", tc.id, tc.whatsOdd, p, tc.mod50)
		}
		if p := PartitionFor(tc.id, 7); p != tc.mod7 {
			t.Errorf("%q (%s): partition of 7 %d, want %d", tc.id, tc.whatsOdd, p, tc.mod7)
		}
	}
}
