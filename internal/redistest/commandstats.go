package redistest

import (
	"slices"
	"strconv"
	"strings"
)

// ScriptCalls sums the EVALSHA and EVAL calls in the text of INFO
// commandstats: how many session lookups (one script call each) a Redis
// has served.
func ScriptCalls(commandstats string) (int64, error) {
	return CommandCalls(commandstats, "evalsha", "eval")
}

// CommandCalls sums the calls of the named commands (lower case, e.g.
// "setrange") in the text of INFO commandstats. Commands run by scripts
// count too.
func CommandCalls(commandstats string, commands ...string) (int64, error) {
	var total int64
	for line := range strings.SplitSeq(commandstats, "\r\n") {
		name, rest, ok := strings.Cut(line, ":")
		cmd, isStat := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isStat || !slices.Contains(commands, cmd) {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, err
				}
				total += n
			}
		}
	}
	return total, nil
}
