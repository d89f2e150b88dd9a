package workload

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// HTTPRoute routes the issuer's host and path to the Service through the Gateways spec.route
// names; nil when spec.route is unset.
func HTTPRoute(ts *v1alpha1.TokenServer) (*gatewayv1.HTTPRoute, error) {
	spec := ts.Spec.Route
	if spec == nil {
		return nil, nil
	}
	host, path, err := issuerHostPath(ts)
	if err != nil {
		return nil, err
	}
	parents := make([]gatewayv1.ParentReference, len(spec.ParentRefs))
	for i, p := range spec.ParentRefs {
		parents[i] = gatewayv1.ParentReference{Name: gatewayv1.ObjectName(p.Name)}
		if p.Namespace != "" {
			parents[i].Namespace = ptr.To(gatewayv1.Namespace(p.Namespace))
		}
		if p.SectionName != "" {
			parents[i].SectionName = ptr.To(gatewayv1.SectionName(p.SectionName))
		}
	}
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: meta(ts, Name(ts)),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{
				// A path prefix matches whole segments in Gateway API: /auth matches /auth/token,
				// not /authx.
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(path)}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
					Name: gatewayv1.ObjectName(Name(ts)), Port: ptr.To(gatewayv1.PortNumber(ServicePort))}}}},
			}},
		},
	}
	if len(spec.Annotations) > 0 {
		route.Annotations = spec.Annotations
	}
	return route, nil
}
