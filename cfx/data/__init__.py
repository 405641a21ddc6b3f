from cfx.data.dataset import Dataset, FeatureSchema, Standardizer
