package par

import (
	"context"
	"testing"
)

func TestFor(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 1000} {
		hits := make([]int, n)
		if err := For(context.Background(), n, func(i int) { hits[i]++ }); err != nil {
			t.Fatal(err)
		}
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: step %d ran %d times", n, i, h)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := 0
	if err := For(ctx, 1000, func(int) { ran++ }); err == nil || ran != 0 {
		t.Fatalf("cancelled: err %v, %d steps ran", err, ran)
	}
}
