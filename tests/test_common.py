"""scikit-learn's estimator checks, run on the estimators in their 2-D input mode.

Images reach the checks as flattened rows: ``image_shape=(1, -1)`` reads each row
of n features as a 1 x n grayscale image, so every check runs, whatever the
number of features it generates.
"""

from conftest import make_tiny_cnn
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import PretrainedFeatureExtractor

_COMMON = dict(image_shape=(1, -1), image_size=8, progress=False, random_state=0)

ESTIMATORS = [
    PretrainedFeatureExtractor("resnet18", weights=None, **_COMMON),
    PretrainedFeatureExtractor(make_tiny_cnn(), **_COMMON),
]

EXPECTED_FAILED = {
    # joblib.hash of a torch tensor changes under copy.deepcopy (torch pickles
    # storage identity), so the check flags a user-supplied nn.Module as mutated
    # even though fit only reads a deep copy of it. test_feature_extraction and
    # test_backbones assert directly that the module is left untouched.
    "check_estimators_overwrite_params": "joblib.hash of nn.Module is not deepcopy-stable",
}


def _expected_failed_checks(estimator):
    if isinstance(estimator.model, str):
        return {}
    return EXPECTED_FAILED


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
