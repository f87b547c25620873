package jobs
import ("testing";"strings";"time")
func TestZZ(t *testing.T){
 for name, src := range map[string]string{
  "interps": task(`script = "`+strings.Repeat(`${1}`, 200000)+`"`),
  "escapes": task(`script = "`+strings.Repeat(`$${a}`, 150000)+`"`),
  "tuple": task(`command = "x"`, `args = [`+strings.Repeat(`1,`, 400000)+`]`),
  "tuple2": task(`command = "x"`, `args = [[`+strings.Repeat(`1,`, 400000)+`]]`),
  "object": task(`command = "x"`, `env = {`+strings.Repeat("a = 1\n", 150000)+`}`),
  "object2": task(`command = "x"`, `env = {x={`+strings.Repeat("a = 1\n", 150000)+`}}`),
  "attrs": task(`command = "x"`, strings.Repeat("a = 1\n", 150000)),
  "blocks": job(strings.Repeat("resources {}\n", 80000)),
  "vars": strings.Repeat("variable \"a\" {}\n", 60000) + job(),
  "comments": job(strings.Repeat("#\n", 500000)),
  "bigfloat": job("priority = 1"+strings.Repeat("0", 1000000)),
  "bigexp": job("priority = 1e99999999 * 1e99999999"),
 } {
   st := time.Now(); _, err := Parse("a.hcl", []byte(src), nil); t.Log(name, len(src), time.Since(st), err != nil)
 }
}
