import factory

from rewards.models import Reward


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    code = factory.Sequence(lambda n: f"reward-{n}")
    category = "gift"
    name_en = factory.LazyAttribute(lambda reward: f"Reward {reward.code}")
    name_zh_hans = factory.LazyAttribute(lambda reward: f"礼品 {reward.code}")
    points_price = 100
    stock = None
