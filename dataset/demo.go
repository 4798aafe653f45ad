package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/driftline/driftline/objstore"
)

// RetailRow is one store x item x day of the demo's demand-forecasting dataset.
type RetailRow struct {
	Date            string  `parquet:"date"`
	StoreID         int32   `parquet:"store_id"`
	ItemID          int32   `parquet:"item_id"`
	Region          string  `parquet:"region"`
	Price           float64 `parquet:"price"`
	Promo           int32   `parquet:"promo"`
	Weekday         int32   `parquet:"weekday"`
	Temperature     float64 `parquet:"temperature,optional"`
	ItemPopularity  float64 `parquet:"item_popularity"`
	CompetitorPrice float64 `parquet:"competitor_price"`
	UnitsSold       float64 `parquet:"units_sold"`
}

// RetailGeneratorVersion changes whenever RetailDay's output changes (2: region column).
const RetailGeneratorVersion = 2

// Regions of the demo's stores (store n is in Regions[(n-1) % 4]).
var Regions = []string{"north", "south", "east", "west"}

// RetailConfig shapes the demo dataset. The zero value is not useful; use DefaultRetail.
type RetailConfig struct {
	Seed   uint64
	Start  time.Time
	Days   int
	Stores int
	Items  int
	// ShiftDay is the first day of the holiday season: prices rise 20%, it gets 12 degrees
	// colder, promotions triple, and demand rises (+6 units, promo lift 6 -> 10).
	ShiftDay int
	// BadRowShare is the share of rows whose temperature is missing (a sensor outage), so the
	// quarantine path has work to do.
	BadRowShare float64
}

// DefaultRetail is the dataset `driftline datagen` and the demo write.
func DefaultRetail() RetailConfig {
	return RetailConfig{Seed: 42, Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), Days: 60,
		Stores: 20, Items: 50, ShiftDay: 30, BadRowShare: 0.002}
}

// ShiftDate is the first date of the drifted regime.
func (c RetailConfig) ShiftDate() time.Time { return c.Start.AddDate(0, 0, c.ShiftDay) }

// Requests are the rows of the last days of the dataset a client would send for predictions:
// every store-item row but those of a temperature sensor's outage (NaN).
func (c RetailConfig) Requests(days int) []RetailRow {
	var rows []RetailRow
	for day := max(0, c.Days-days); day < c.Days; day++ {
		for _, r := range c.RetailDay(day) {
			if !math.IsNaN(r.Temperature) {
				rows = append(rows, r)
			}
		}
	}
	return rows
}

// RetailDay generates one day deterministically: the same config and day give the same rows.
func (c RetailConfig) RetailDay(day int) []RetailRow {
	items := rand.New(rand.NewPCG(c.Seed, 1)) // stable item attributes
	basePrice := make([]float64, c.Items)
	popularity := make([]float64, c.Items)
	for i := range c.Items {
		basePrice[i] = 2 + 18*items.Float64()
		popularity[i] = 0.5 + 2.5*items.Float64()
	}
	r := rand.New(rand.NewPCG(c.Seed, uint64(1000+day)))
	date := c.Start.AddDate(0, 0, day)
	weekday := (int32(date.Weekday()) + 6) % 7 // Monday = 0
	shifted := day >= c.ShiftDay
	temp := 18 + 4*math.Sin(float64(day)/9)
	priceMul, promoP, level, promoLift := 1.0, 0.1, 0.0, 6.0
	if shifted {
		temp -= 12
		priceMul, promoP, level, promoLift = 1.2, 0.3, 6, 10
	}
	rows := make([]RetailRow, 0, c.Stores*c.Items)
	for s := range c.Stores {
		storeTemp := temp + r.NormFloat64()
		for i := range c.Items {
			price := basePrice[i] * priceMul * (0.9 + 0.2*r.Float64())
			promo := int32(0)
			if r.Float64() < promoP {
				promo = 1
				price *= 0.8
			}
			units := 5 + level + 8*popularity[i] + promoLift*float64(promo) - 0.8*price +
				0.5*float64(weekday) + 0.25*(storeTemp-15) + 2*r.NormFloat64()
			rows = append(rows, RetailRow{
				Date: date.Format(DateLayout), StoreID: int32(s + 1), ItemID: int32(i + 1), Region: Regions[s%len(Regions)],
				Price: round2(price), Promo: promo, Weekday: weekday, Temperature: round2(storeTemp),
				ItemPopularity: round2(popularity[i]), CompetitorPrice: round2(basePrice[i] * (0.95 + 0.1*r.Float64())),
				UnitsSold: math.Max(0, math.Round(units)),
			})
			if r.Float64() < c.BadRowShare {
				rows[len(rows)-1].Temperature = math.NaN()
			}
		}
	}
	return rows
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// WriteRetail writes every day of the dataset as datasets/<name>/dt=<date>/part-0000.parquet.
// Partitions are immutable: an existing one is left as it is, so running it twice is safe.
func WriteRetail(ctx context.Context, b objstore.Bucket, name string, c RetailConfig) (written, existing int, err error) {
	for day := range c.Days {
		key := PartitionPrefix(name, c.Start.AddDate(0, 0, day)) + "part-0000.parquet"
		data, err := EncodeParquet(c.RetailDay(day))
		if err != nil {
			return written, existing, fmt.Errorf("encode %s: %w", key, err)
		}
		_, err = b.Put(ctx, key, data, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/vnd.apache.parquet"})
		switch {
		case errors.Is(err, objstore.ErrPreconditionFailed):
			existing++
		case err != nil:
			return written, existing, err
		default:
			written++
		}
	}
	return written, existing, nil
}
