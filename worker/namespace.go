package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"dunning/workflows"
)

// SetupNamespace makes a namespace fit for dunning: it registers the
// custom search attributes that are missing and raises the retention of
// closed workflows to at least retention. It only ever adds, so running it
// again, or from several processes at once, is safe.
func SetupNamespace(ctx context.Context, c client.Client, namespace string, retention time.Duration, log *slog.Logger) error {
	missing, err := MissingSearchAttributes(ctx, c, namespace)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		attrs := make(map[string]enumspb.IndexedValueType, len(missing))
		for _, name := range missing {
			attrs[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: attrs,
		})
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("register search attributes %v on namespace %s: %w", missing, namespace, err)
		}
		log.Info("search attributes registered", "namespace", namespace, "names", missing)
	}

	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	if have := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); have < retention {
		_, err := c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: namespace,
			Config: &namespacepb.NamespaceConfig{
				WorkflowExecutionRetentionTtl: durationpb.New(retention),
			},
		})
		if err != nil {
			return fmt.Errorf("raise retention of namespace %s to %s: %w", namespace, retention, err)
		}
		log.Info("namespace retention raised", "namespace", namespace, "from", have, "to", retention)
	}
	return nil
}

// MissingSearchAttributes lists dunning's search attributes that the
// namespace lacks.
func MissingSearchAttributes(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	var missing []string
	for _, k := range workflows.SearchAttributeKeys {
		if _, ok := resp.GetCustomAttributes()[k.GetName()]; !ok {
			missing = append(missing, k.GetName())
		}
	}
	return missing, nil
}

// RetentionTooShortError says that a namespace forgets closed workflows
// sooner than dunning needs, and how to raise its retention.
type RetentionTooShortError struct {
	Namespace string
	Have      time.Duration // the namespace's retention
	Need      time.Duration // TEMPORAL_NAMESPACE_RETENTION
}

func (e *RetentionTooShortError) Error() string {
	return fmt.Sprintf("namespace %s keeps closed workflows for %s, less than the %s of TEMPORAL_NAMESPACE_RETENTION: "+
		"a Stripe event redelivered after that would start its work again (event IDs deduplicate only while the closed workflow is kept). "+
		"Raise the retention with `temporal operator namespace update --namespace %s --retention %s`, "+
		"or run deploy/setup-namespace.sh with TEMPORAL_NAMESPACE_RETENTION=%s (in the compose stack: `docker compose up temporal-setup`); "+
		"neither ever lowers a longer retention",
		e.Namespace, hours(e.Have), hours(e.Need), e.Namespace, hours(e.Need), hours(e.Need))
}

// hours writes d the way the temporal CLI and TEMPORAL_NAMESPACE_RETENTION
// take it, in whole hours when it is (168h rather than 168h0m0s).
func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// CheckRetention fails unless namespace keeps closed workflows for at
// least need: the worker refuses to run on a namespace where a redelivered
// event would no longer meet its closed workflow. The error, a
// *RetentionTooShortError when the retention is short, says how to raise
// it. It changes nothing.
func CheckRetention(ctx context.Context, c client.Client, namespace string, need time.Duration) error {
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var notFound *serviceerror.NamespaceNotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("namespace %s does not exist: create it with deploy/setup-namespace.sh (in the compose stack: `docker compose up temporal-setup`), "+
			"or `temporal operator namespace create --namespace %s --retention %s`: %w", namespace, namespace, hours(need), err)
	}
	if err != nil {
		return fmt.Errorf("describe namespace %s to check its retention: %w", namespace, err)
	}
	if have := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); have < need {
		return &RetentionTooShortError{Namespace: namespace, Have: have, Need: need}
	}
	return nil
}
