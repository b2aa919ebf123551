package cloud

import "math"

// What a stack costs a month, from a small table here: mlstack asks no
// pricing API. Sources (on-demand, Linux, us-east-1, late 2025):
// aws.amazon.com/ec2/pricing/on-demand (instances), aws.amazon.com/vpc/pricing
// (a public IPv4 address, $0.005/h since February 2024) and
// aws.amazon.com/ebs/pricing (gp3, $0.08 per GB-month). Assumptions: 730
// hours a month; us-east-1 prices everywhere (most regions cost up to about
// a third more); no free tier; S3 storage of artifacts ($0.023 per
// GB-month) and data transfer not counted. A stopped instance bills its
// volume only: its public address is released.
var hourlyUSD = map[string]float64{
	"t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464,
	"t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
	"t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376,
	"t4g.micro": 0.0084, "t4g.small": 0.0168, "t4g.medium": 0.0336,
}

// dbHourlyUSD are RDS for PostgreSQL's single-AZ on-demand prices
// (aws.amazon.com/rds/postgresql/pricing, us-east-1, late 2025); its gp3
// storage costs $0.115 per GB-month, automated backups up to the
// database's size nothing.
var dbHourlyUSD = map[string]float64{
	"db.t4g.micro": 0.016, "db.t4g.small": 0.032, "db.t4g.medium": 0.065,
	"db.t3.micro": 0.018, "db.t3.small": 0.036, "db.t3.medium": 0.072,
}

const dbGP3PerGBMonth = 0.115

const (
	hoursPerMonth     = 730
	publicIPv4Hourly  = 0.005
	gp3PerGBMonth     = 0.08
	rootVolumeGiB     = 16 // the instance's root volume (runRequest)
	CostSourceSummary = "on-demand, us-east-1 prices, instance + public IPv4 + 16 GiB gp3; S3 artifacts not counted"
)

// CostPerMonth is the stack's monthly cost in US dollars, rounded to the
// cent; false when the instance type is not in the table.
func (i StackInfo) CostPerMonth() (float64, bool) {
	usd, ok := i.dbCostPerMonth()
	if !ok {
		return 0, false
	}
	if i.Instance == nil {
		return math.Round(usd*100) / 100, true
	}
	switch i.Instance.State {
	case "pending", "running":
		h, ok := hourlyUSD[i.Instance.Type]
		if !ok {
			return 0, false
		}
		usd += (h+publicIPv4Hourly)*hoursPerMonth + rootVolumeGiB*gp3PerGBMonth
	case "stopping", "stopped":
		usd += rootVolumeGiB * gp3PerGBMonth
	}
	return math.Round(usd*100) / 100, true
}

// dbCostPerMonth is the RDS database's part: its class while it runs, its
// storage always; false for a class not in the table.
func (i StackInfo) dbCostPerMonth() (float64, bool) {
	if i.DBClass == "" {
		return 0, true
	}
	usd := DBStorageGiB * dbGP3PerGBMonth
	switch i.DBState {
	case "stopped", "stopping", "deleting":
		return usd, true
	}
	h, ok := dbHourlyUSD[i.DBClass]
	return usd + h*hoursPerMonth, ok
}
