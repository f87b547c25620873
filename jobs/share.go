package jobs

import (
	"math"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// gpuShare reads gpu.share: a fraction of one GPU in steps of 0.01, more
// than 0 and less than 1 (a whole GPU is share-less count = 1). Sharing
// is for one GPU: count, when given, must be 1.
func (d *decoder) gpuShare(gc *hcl.BodyContent, g *GPU) {
	a := gc.Attributes["share"]
	if a == nil {
		return
	}
	const what = "gpu.share"
	v, ok := d.evalExpr(a.Expr)
	if !ok {
		return
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid value for "+what, "%s must be a number from 0.01 to 0.99 (a fraction of one GPU), not %s.", what, v.Type().FriendlyName())
		return
	}
	f := nv.AsBigFloat()
	// Decimal fractions are not exact in binary: 0.01*100 is within a
	// rounding error of 1, and that is what "steps of 0.01" means here.
	h, _ := new(big.Float).Mul(f, big.NewFloat(100)).Float64()
	n := int64(math.Round(h))
	if math.Abs(h-float64(n)) > 1e-9 || n < 1 || n > 99 {
		d.errorf(a.Expr.Range(), "Invalid value for "+what, "%s must be a fraction of one GPU from 0.01 to 0.99 in steps of 0.01, e.g. 0.25; got %s. For a whole GPU leave share out.", what, formatNumber(f))
		return
	}
	if c := gc.Attributes["count"]; c != nil && g.Count != 1 {
		d.errorf(c.Expr.Range(), "Invalid value for gpu.count", "gpu.share is a fraction of one GPU: set count = 1 (or leave it out) with share, or remove share for whole GPUs.")
		return
	}
	if g.Link == "nvlink" {
		d.errorf(a.Expr.Range(), "Conflicting gpu.share and gpu.link", `a shared GPU is one GPU, with no link to ask for: remove link = "nvlink" or share.`)
		return
	}
	g.Share = float64(n) / 100
}
