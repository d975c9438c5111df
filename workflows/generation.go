package workflows

import "go.temporal.io/sdk/workflow"

// Every workflow.GetVersion that a run calls for the first time records a
// marker and upserts the TemporalChangeVersion search attribute: one more
// visibility write each. A new recovery used to call four or five of
// them. A run begun now records one marker instead, the generation, whose
// number stands for the version of every change it lists; only runs begun
// before it (which have no generation marker) consult, and record, the
// markers of each change.
//
// A change of workflow commands after this one is added as before, with
// its own GetVersion, through versions.get, outside any generation. Once
// it has been released, a new generation may take it over: append a map
// to generations that holds every change of the one before (with the
// version it stood for, unchanged) and the new change's version, and
// raise nothing else. A generation once released is never edited: its
// runs rely on what it stood for.

// generationChange is the change ID of the generation marker.
const generationChange = "generation"

// generations[g] is what generation g stands for: each change's version.
// Generation 0 (workflow.DefaultVersion) stands for nothing.
var generations = []map[string]workflow.Version{
	nil,
	{
		moneyRulesChange:                    moneyRules,
		adoptMoneyRulesChange:               1,
		"act-on-signals-applied-after-step": 1,
		settleOnFreshStateChange:            1,
		waiverNoticeChange:                  1,
		waiverTakenMidStepChange:            1,
		localFirstFailureChange:             1,
		toldAfterRecordChange:               1,
		firstReadsChange:                    1,
		reportMemoChange:                    1,
		localRoutingChange:                  1,
		"paid-after-the-end":                1,
		"card-updated-tells-expiry-watches": 1,
		reduceListedEventsChange:            1,
		reconcileWatermarkChange:            1,
	},
}

// versions answers a run's GetVersion questions. The generation is asked
// for (and, in a new run, recorded) at the first question, so a run that
// asks none records nothing.
type versions struct {
	asked bool
	gen   workflow.Version
	// seen are the answers given so far, for the handlers that may not
	// ask (validators, queries): see known.
	seen map[string]workflow.Version
}

// get returns the version of change for this run: the one its generation
// stands for, or else the change's own marker (recorded now at max in a
// run that has none yet).
func (v *versions) get(ctx workflow.Context, change string, max workflow.Version) workflow.Version {
	if !v.asked {
		v.gen = workflow.GetVersion(ctx, generationChange, workflow.DefaultVersion, workflow.Version(len(generations)-1))
		v.asked = true
	}
	if v.gen > workflow.DefaultVersion {
		if version, ok := generations[v.gen][change]; ok {
			return version
		}
	}
	version := workflow.GetVersion(ctx, change, workflow.DefaultVersion, max)
	if v.seen == nil {
		v.seen = map[string]workflow.Version{}
	}
	v.seen[change] = version
	return version
}

// known is the version of change for this run without asking: the answer
// given before, else what its generation stands for, else max, which a
// question asked from now on records. A validator or a query, which must
// not record a marker, tells with it what the workflow would do.
func (v *versions) known(change string, max workflow.Version) workflow.Version {
	if version, ok := v.seen[change]; ok {
		return version
	}
	gen := v.gen
	if !v.asked {
		gen = workflow.Version(len(generations) - 1) // the one a first question records
	}
	if gen > workflow.DefaultVersion {
		if version, ok := generations[gen][change]; ok {
			return version
		}
	}
	return max
}

// version is versions.get for this run; the recovery's handlers share it.
func (r *recovery) version(ctx workflow.Context, change string, max workflow.Version) workflow.Version {
	return r.v.get(ctx, change, max)
}

type versionsKey struct{}

// withVersions gives the run that ctx is the root of its versions; the
// event and reconciliation workflows ask through the context.
func withVersions(ctx workflow.Context) workflow.Context {
	return workflow.WithValue(ctx, versionsKey{}, &versions{})
}

// version is versions.get for the run of ctx. A context without its
// run's versions asks the change's own marker.
func version(ctx workflow.Context, change string, max workflow.Version) workflow.Version {
	if v, ok := ctx.Value(versionsKey{}).(*versions); ok {
		return v.get(ctx, change, max)
	}
	return workflow.GetVersion(ctx, change, workflow.DefaultVersion, max)
}
