package monitor

import (
	"encoding/json"
	"math"
	"runtime"
	"strconv"
	"sync"
)

// columns reads the features of logged requests (their inputs: a JSON object of numbers) into
// one column per feature, NaN for a missing or null feature; ok[i] is false when request i's
// inputs are not such an object. Flat objects of plain keys are scanned without allocating;
// anything else goes through encoding/json. Chunks run on every core.
func columns(inputs []string, features []string) (cols [][]float64, ok []bool) {
	n := len(inputs)
	index := make(map[string]int, len(features))
	for j, f := range features {
		index[f] = j
	}
	cols = make([][]float64, len(features))
	for j := range cols {
		cols[j] = make([]float64, n)
	}
	ok = make([]bool, n)
	parallel(n, func(lo, hi int) {
		row := make([]float64, len(features))
		for i := lo; i < hi; i++ {
			for j := range row {
				row[j] = math.NaN()
			}
			if !scanFlat(inputs[i], index, row) && !decodeSlow(inputs[i], index, row) {
				continue
			}
			ok[i] = true
			for j, v := range row {
				cols[j][i] = v
			}
		}
	})
	return cols, ok
}

// parallel runs f over [0, n) in chunks on GOMAXPROCS goroutines.
func parallel(n int, f func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/4096))
	chunk := (n + workers - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(n, lo+chunk))
	}
	wg.Wait()
}

func decodeSlow(s string, index map[string]int, row []float64) bool {
	var x map[string]*float64
	if json.Unmarshal([]byte(s), &x) != nil || x == nil {
		return false
	}
	for k, v := range x {
		if j, ok := index[k]; ok && v != nil {
			row[j] = *v
		}
	}
	return true
}

// scanFlat reads {"key": number|null, ...} with keys free of escapes; false: not that shape
// (the caller then decodes it with encoding/json, which also rejects what is not JSON).
func scanFlat(s string, index map[string]int, row []float64) bool {
	i := skip(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skip(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skip(s, i+1) == len(s)
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return false
		}
		k := i + 1
		for k < len(s) && s[k] != '"' {
			if s[k] == '\\' || s[k] < 0x20 {
				return false
			}
			k++
		}
		if k >= len(s) {
			return false
		}
		key := s[i+1 : k]
		i = skip(s, k+1)
		if i >= len(s) || s[i] != ':' {
			return false
		}
		i = skip(s, i+1)
		v := i
		for v < len(s) && s[v] != ',' && s[v] != '}' && s[v] != ' ' && s[v] != '\t' && s[v] != '\n' && s[v] != '\r' {
			v++
		}
		lit := s[i:v]
		val := math.NaN()
		if lit != "null" {
			if !jsonNumber(lit) {
				return false
			}
			f, err := strconv.ParseFloat(lit, 64)
			if err != nil {
				return false
			}
			val = f
		}
		if j, ok := index[key]; ok {
			row[j] = val
		}
		i = skip(s, v)
		if i >= len(s) {
			return false
		}
		if s[i] == '}' {
			return skip(s, i+1) == len(s)
		}
		if s[i] != ',' {
			return false
		}
		i = skip(s, i+1)
	}
}

// jsonNumber reports whether lit is a JSON number (strconv also takes "Inf", "0x1p3", "1_0").
func jsonNumber(lit string) bool {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	digits := func() int {
		st := i
		for i < len(lit) && lit[i] >= '0' && lit[i] <= '9' {
			i++
		}
		return i - st
	}
	if i < len(lit) && lit[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(lit) && lit[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(lit)
}

func skip(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}
