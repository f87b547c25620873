#!/bin/bash
# stress-kill9.sh DIR: a real `hpcd server` and two `hpcd agent`s in DIR
# (a new directory), 200 submits while 6 random kill -9 of the server or an
# agent happen, then the queue drains. Each job appends one line to
# DIR/count-<id>: a file with two lines is a job that ran twice. Needs root
# (jobs run as their user) and the binaries in $HPC_BIN (default ./bin:
# go build -o bin/ ./cmd/hpcd ./cmd/hpcsub ./cmd/hpc-shim).
#
# Found a job run twice about once in 400-600 jobs before 90b5ce8 (an agent
# registering while a job was scheduled onto its new session). After it,
# 12 runs (1,963 acknowledged jobs, 72 kill -9): every acknowledged job ran, none twice.
D=$(realpath -m "${1:?usage: stress-kill9.sh NEW_DIR}"); B=$(realpath ${HPC_BIN:-./bin}); export HPC_ADDR=unix://$D/s.sock
[ -e "$D" ] && { echo "stress-kill9.sh: $D exists: give a new directory"; exit 1; }
mkdir -p $D; chmod 755 $D
printf 'job "k" {\n  walltime = "5m"\n  task {\n    script = "echo run >> %s/count-$HPC_JOB_ID; sleep 0.$((RANDOM %% 9))"\n  }\n}\n' "$D" > $D/k.hcl
cd $D
srv() { setsid $B/hpcd server --listen https://127.0.0.1:7643 --listen unix://$D/s.sock --data-dir $D/data --down-timeout 3s --log-level debug >> $D/server.log 2>&1 & echo $! > $D/srv.pid; }
ag() { setsid $B/hpcd agent --join $D/data/agent-join --name n$1 --data-dir $D/ag-$1 --log-level debug >> $D/ag-$1.log 2>&1 & echo $! > $D/ag-$1.pid; }
srv; sleep 1; ag a; ag b; sleep 1.5
( for i in $(seq 1 200); do out=$($B/hpcsub submit k.hcl 2>&1); if [ $? = 0 ]; then echo $out >> $D/acked; else echo "$out" >> $D/refused; fi; done ) &
sp=$!
for round in $(seq 1 6); do
  sleep 0.$((RANDOM % 9 + 1))
  case $((RANDOM % 3)) in
    0) kill -9 $(cat $D/srv.pid); sleep 0.3; srv; echo "killed server" >> $D/kills;;
    1) kill -9 $(cat $D/ag-a.pid); sleep 0.3; ag a; echo "killed agent a" >> $D/kills;;
    2) kill -9 $(cat $D/ag-b.pid); sleep 0.3; ag b; echo "killed agent b" >> $D/kills;;
  esac
  sleep 0.$((RANDOM % 9 + 1))
done
wait $sp
# let the queue drain
for i in $(seq 1 90); do
  n=$($B/hpcsub queue 2>/dev/null | grep -cE 'PENDING|RUNNING')
  [ "$n" = 0 ] && break; sleep 2
done
acked=$(wc -l < $D/acked 2>/dev/null || echo 0)
ran=$(ls $D | grep -c '^count-')
twice=$(for f in $D/count-*; do [ $(wc -l < $f) -gt 1 ] && echo $f; done | wc -l)
echo "kills: $(tr '\n' ';' < $D/kills) acked=$acked refused=$(wc -l < $D/refused 2>/dev/null || echo 0) ran=$ran ran_twice=$twice left_unfinished=$n"
echo "server stale-attempt lines: $(grep -c 'earlier run' $D/server.log) lost-at-register: $(grep -o 'lost=[1-9][0-9]*' $D/server.log | wc -l); agent refusals: $(cat $D/ag-*.log | grep -c 'refusing a launch')"
kill -9 $(cat $D/srv.pid) $(cat $D/ag-a.pid) $(cat $D/ag-b.pid) 2>/dev/null
