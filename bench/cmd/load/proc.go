package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// statusKB reads a "Vm...:   1234 kB" field of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusKB(f, field)
}

func parseStatusKB(f interface{ Read([]byte) (int, error) }, field string) (int64, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB"))
		return strconv.ParseInt(v, 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in status", field)
}

// procStat is what the bench needs from /proc/PID/stat.
type procStat struct {
	ppid int
	// user and sys are CPU times in ticks, including reaped children's.
	user, sys int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime..cstime fields 14-17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("malformed stat")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, err
	}
	var t [4]int64 // utime, stime, cutime, cstime
	for i, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, err
		}
		t[i] = v
	}
	return procStat{ppid: ppid, user: t[0] + t[2], sys: t[1] + t[3]}, nil
}

// cpuTime is CPU time in seconds.
type cpuTime struct{ user, sys float64 }

// treeCPU returns the CPU time used so far by pid and every live
// descendant (PostgreSQL's backends are children of the postmaster).
func treeCPU(pid int) (cpuTime, error) {
	root, err := readStat(pid)
	if err != nil {
		return cpuTime{}, err
	}
	stats := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			stats[p] = st
		}
	}
	user, sys := root.user, root.sys
	for p, st := range stats {
		if p != pid && descends(p, pid, stats) {
			user += st.user
			sys += st.sys
		}
	}
	return cpuTime{user: float64(user) / clockTicks, sys: float64(sys) / clockTicks}, nil
}

func descends(p, ancestor int, stats map[int]procStat) bool {
	for range 64 { // bounded: a process tree is never this deep
		st, ok := stats[p]
		if !ok || st.ppid <= 1 {
			return false
		}
		if st.ppid == ancestor {
			return true
		}
		p = st.ppid
	}
	return false
}

// ioStat is what the bench needs from /proc/PID/io: write system calls and
// bytes sent to storage (including fsync'd WAL and database pages).
type ioStat struct{ syscw, writeBytes int64 }

func readIO(pid int) (ioStat, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ioStat{}, err
	}
	defer f.Close()
	var st ioStat
	var found int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "syscw":
			st.syscw, found = n, found+1
		case "write_bytes":
			st.writeBytes, found = n, found+1
		}
	}
	if found != 2 {
		return ioStat{}, fmt.Errorf("/proc/%d/io: fields missing", pid)
	}
	return st, sc.Err()
}
