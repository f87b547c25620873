package jobs
import ("testing";"strings";"time")
func TestZZ(t *testing.T){
 for name, src := range map[string]string{
  "interps": task(`script = "`+strings.Repeat(`${1}`, 9000)+`"`),
  "escapes": task(`script = "`+strings.Repeat(`$${a}`, 8000)+`"`),
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
func TestZZ2(t *testing.T){
 for name, src := range map[string]string{
  "escapes-long": task(`script = "`+strings.Repeat(`$${a}`, 8000)+strings.Repeat("x", 900000)+`"`),
  "tuple": task(`command = "x"`, `args = [`+strings.Repeat(`1,`, 32000)+`]`),
  "tuple-str": task(`command = "x"`, `args = [`+strings.Repeat(`"a",`, 4096)+`]`),
  "object": task(`command = "x"`, `env = {`+strings.Repeat("a = 1\n", 20000)+`}`),
  "objectdistinct": task(`command = "x"`, `env = {`+func() string { var b strings.Builder; for i := 0; i < 20000; i++ { b.WriteString("a"); b.WriteString(strings.Repeat("b", i%50)); b.WriteString(string(rune('a'+i%26))); b.WriteString(" = 1\n") }; return b.String() }()+`}`),
  "ops": job("priority = 1"+strings.Repeat("+1", 9990)),
  "cond": job("priority = "+strings.Repeat("true ? 1 : ", 3000)+"1"),
  "neg": job("priority = "+strings.Repeat("-", 9990)+"1"),
  "not": job("requeue = "+strings.Repeat("!", 9990)+"true"),
  "paren": job("priority = "+strings.Repeat("(", 60)+"1"+strings.Repeat(")", 60)),
  "index": job("priority = [1]"+strings.Repeat("[0]", 3000)),
 } {
   st := time.Now(); _, err := Parse("a.hcl", []byte(src), nil); t.Log(name, len(src), time.Since(st), err)
 }
}
